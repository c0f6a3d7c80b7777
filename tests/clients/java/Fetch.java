// GET a URL with java.net.http under `authsome run`, the way the README tells Java users to:
// the proxy from -Dhttps.proxyHost/-Dhttps.proxyPort, its credentials from HTTPS_PROXY through an
// Authenticator, the run's CA from a truststore (-Djavax.net.ssl.trustStore).
// Run as a single-file program: java [flags] Fetch.java URL
import java.net.Authenticator;
import java.net.PasswordAuthentication;
import java.net.ProxySelector;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

public class Fetch {
    public static void main(String[] args) throws Exception {
        String[] userInfo = URI.create(System.getenv("HTTPS_PROXY")).getRawUserInfo().split(":", 2);
        String user = URLDecoder.decode(userInfo[0], StandardCharsets.UTF_8);
        char[] password = URLDecoder.decode(userInfo[1], StandardCharsets.UTF_8).toCharArray();
        HttpClient client = HttpClient.newBuilder()
            .proxy(ProxySelector.getDefault())
            .authenticator(new Authenticator() {
                @Override
                protected PasswordAuthentication getPasswordAuthentication() {
                    return getRequestorType() == RequestorType.PROXY ? new PasswordAuthentication(user, password) : null;
                }
            })
            .build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0]))
            .header("Authorization", "Bearer " + System.getenv("X_ACCESS_TOKEN"))
            .build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.body());
        System.exit(response.statusCode() == 200 ? 0 : 1);
    }
}
